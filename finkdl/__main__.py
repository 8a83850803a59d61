from finkdl.cli import main

main()
