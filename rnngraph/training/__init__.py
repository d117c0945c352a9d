"""Training: losses (``rg.losses``), optimizers (``rg.optim``) and the loop (``rg.train``)."""
