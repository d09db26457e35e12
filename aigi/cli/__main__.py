from aigi.cli import app

app()
