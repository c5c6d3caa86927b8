"""Admin for the definitions and the people, for superusers. Clinical data are changed only through services."""

from django.contrib import admin

from trial.models import AuditRecord, Protocol, Site, SiteMembership


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ["number", "name", "name_zh", "city", "principal_investigator"]


@admin.register(SiteMembership)
class SiteMembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "site", "role"]
    list_filter = ["role", "site"]
    search_fields = ["user__username"]


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(Protocol)
class ProtocolAdmin(ReadOnlyAdmin):
    list_display = ["code", "version", "sha256", "loaded_at"]
    exclude = ["definition"]


@admin.register(AuditRecord)
class AuditRecordAdmin(ReadOnlyAdmin):
    list_display = ["at", "username", "object_type", "object_id", "action", "item_code", "old_value", "new_value"]
    list_filter = ["object_type", "action"]
    search_fields = ["username", "object_id", "item_code"]
