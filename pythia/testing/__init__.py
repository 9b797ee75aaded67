"""What tests and benchmarks use to drive a real server: `live_server.LiveServer`."""
