"""What an identity may spend: providers, models, ``max_tokens`` and daily budgets."""
