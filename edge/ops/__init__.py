"""Running the agent as a service: systemd notification, metrics, logging."""
