"""saganet.data"""
