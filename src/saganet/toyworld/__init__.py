"""saganet.toyworld"""
