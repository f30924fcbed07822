"""Process supervision: chains split into steps, step labels from rollouts (MC, OmegaPRM), consensus, step pairs."""
