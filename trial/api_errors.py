from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc: Exception, context: dict) -> object:  # being written
    return drf_exception_handler(exc, context)
