"""The web pages' files (HTML, CSS and plain JavaScript, no build step), served by `openline.api.web`."""
