"""The courier depot station: device readings, waybills and assembled parcels."""
