"""The data agent: the only agent that calls the exchange for market data. It fetches through the
two-tier cache with batching, pushes tickers and klines on NATS to the consumers that asked, and
answers look-ups from the cache."""
