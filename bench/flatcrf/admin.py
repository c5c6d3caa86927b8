from django.contrib import admin

from bench.flatcrf.models import FlatCrf


@admin.register(FlatCrf)
class FlatCrfAdmin(admin.ModelAdmin):
    list_display = ("subject", "visit_code", "report_date")
