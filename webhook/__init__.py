"""The mutating and validating admission webhook."""
