"""What finkdl brings along to run without Fink: a local Kafka broker, Fink-like alerts to
fill it, and the demo that downloads them. None of it is on the data's way of a download."""
