from modelops.cli import run

run()
