"""The web page of `sereno serve`, rendered on the server: every view as HTML from the API's
answer records, pure functions with no I/O. The script (`serve/static/app.js`) renders the
same views from the JSON API and keeps them live; this rendering is what people see without
scripts, read-only, and what the script starts from."""
