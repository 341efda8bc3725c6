"""One LLM layer for every stage: litellm behind a cache, concurrency limit, retries, budget and costs."""
