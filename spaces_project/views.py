from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache


@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness for load balancers: the process answers. It touches no database on purpose,
    which also makes it the floor the HTTP benchmark compares real pages against."""
    return HttpResponse("ok\n", content_type="text/plain")
