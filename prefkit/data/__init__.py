"""The data side: read, adapt, validate, convert, dedupe, mix, card. polars only; never imports torch."""
