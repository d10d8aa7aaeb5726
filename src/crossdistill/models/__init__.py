"""Networks: one file each, a registry, complexity counting."""
