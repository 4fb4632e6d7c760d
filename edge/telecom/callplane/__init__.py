"""Call-plane SIM-box detection: per-entity state, features, rules, model, detector."""
