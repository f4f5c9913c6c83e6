"""saganet.eval"""
