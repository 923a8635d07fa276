"""The local stack that `./task up` and the test fixtures run (stack, processes, ports, PostgreSQL,
Kafka, the SMTP and Zipkin sinks), and the toolchain that finds or installs every tool the
project runs, the stack's and the delivery checks' alike (toolchain.py).
"""
