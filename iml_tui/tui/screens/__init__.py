"""Screens: the main labelling screen and the help screen."""
