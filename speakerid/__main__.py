from speakerid.cli import run

run()
