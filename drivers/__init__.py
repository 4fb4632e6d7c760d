"""Getting bytes from the world: packet capture, event feeds, serial devices, folders."""
