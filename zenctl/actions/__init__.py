"""Action kinds any agent may propose (file-system repairs); each module registers its kinds when imported."""
