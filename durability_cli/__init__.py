"""durability: forecast how the durability of materials decays under changing conditions."""

__version__ = "0.1.0"
