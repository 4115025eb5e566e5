"""The Deep Land Cover Processing provider."""
