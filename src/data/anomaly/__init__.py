"""Time series with injected, labelled anomalies for anomaly detection."""
