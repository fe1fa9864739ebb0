"""The Multi30k German->English recipe: prepare -> train -> choose a checkpoint on val -> evaluate."""
