"""Views of the Messages tab, one module per area: listing, read, compose, folders."""
