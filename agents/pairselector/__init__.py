"""The pair selector: ranks tradable symbols and publishes the active pair list."""
