from finkdl.startup import main

main()
