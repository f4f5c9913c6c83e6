"""Golden-case framework: discovery, tolerance policy and a registry of component runners."""
