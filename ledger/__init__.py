"""batterytrace.ledger"""
