"""saganet.models"""
