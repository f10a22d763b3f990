"""The bench site's one view: a REST framework endpoint at /."""
from rest_framework.decorators import api_view
from rest_framework.response import Response


@api_view(["GET"])
def index(request):
    return Response({"app": "django", "ok": True})
