from django.http import HttpRequest, JsonResponse


def healthz(request: HttpRequest) -> JsonResponse:  # being written
    return JsonResponse({"status": "ok"})
