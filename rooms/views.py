from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from accounts.services import hosting_eligibility

from .models import Space


@login_required
def space_new(request: HttpRequest) -> HttpResponse:
    eligibility = hosting_eligibility(user=request.user)
    return render(
        request,
        "rooms/space_new.html",
        {"eligibility": eligibility},
        status=200 if eligibility.allowed else 403,
    )


def space_detail(request: HttpRequest, space_id: int) -> HttpResponse:
    space = get_object_or_404(Space.objects.select_related("host"), pk=space_id)
    return render(request, "rooms/space.html", {"space": space})
