"""A stand-in rank for the launcher's signal tests: ignores its arguments and sleeps (killed by the test)."""
import time

time.sleep(600)
