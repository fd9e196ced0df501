"""minidl playground: a local web page where the real minidl trains, live (``minidl playground``).

The server (``server``) trains with minidl's own modules, losses, optimizers and trainer (``session``),
and streams compact binary frames (``frames``) to one static page (``static/``) by Server-Sent Events.
Importing this package needs nothing beyond minidl; ``server`` needs the ``minidl[playground]`` extra.
"""
