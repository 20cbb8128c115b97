"""One worker process: executors, VUs, the HTTP client, the recorder, the coordinator agent."""
