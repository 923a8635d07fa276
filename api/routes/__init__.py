"""REST routes: thin translations from HTTP to the services."""
