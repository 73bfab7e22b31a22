import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "compliance_site.settings")
application = get_wsgi_application()

# What is loaded by now (Django, the apps, the URLconf and every view it
# imports) lives as long as the worker: take it out of the garbage
# collector's walks. Otherwise each full collection walks all of it, a pause
# of tens of milliseconds that the request in progress waits out, and with
# it every writer queued behind that request's lock on the log head.
get_resolver().reverse_dict  # noqa: B018 - imports the URLconf and its views now
gc.collect()
gc.freeze()
