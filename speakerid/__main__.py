from speakerid.cli.main import run

run()
