"""One module per ``meticulous`` verb: ``register(subparsers)`` adds its
sub-parser, and its function selects the runs (:mod:`..selection`), calls one
function of the part that holds the logic, and prints."""
