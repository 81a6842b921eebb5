"""Time series for forecasting: generators, CSV loading, sliding windows and the DataModule."""
