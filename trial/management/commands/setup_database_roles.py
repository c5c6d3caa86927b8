import os

from django.core.management.base import BaseCommand, CommandError, CommandParser

from trial.database_roles import RoleSetupError, database_roles_create, database_roles_grant


class Command(BaseCommand):
    help = (
        "Least privilege on PostgreSQL. --create (as a superuser): the owner and app login roles, passwords from "
        "DB_OWNER_PASSWORD and DB_APP_PASSWORD, the database and schema owned by the owner. --grant (as the owner, "
        "after every migrate): the app role reads and writes the tables but only INSERTs and SELECTs the audit trail."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--create", action="store_true", help="create or update both roles (as a superuser)")
        parser.add_argument("--grant", action="store_true", help="grant the app role its privileges (as the owner)")
        parser.add_argument("--owner", default=os.environ.get("DB_OWNER_ROLE", "edc_owner"))
        parser.add_argument("--app", default=os.environ.get("DB_APP_ROLE", "edc_app"))

    def handle(self, *args: object, **options: object) -> None:
        if not (options["create"] or options["grant"]):
            raise CommandError("say --create (as a superuser), --grant (as the owner, after migrate), or both")
        try:
            if options["create"]:
                database_roles_create(
                    owner=options["owner"],
                    app=options["app"],
                    owner_password=_password("DB_OWNER_PASSWORD"),
                    app_password=_password("DB_APP_PASSWORD"),
                )
                self.stdout.write(f"roles {options['owner']} (owner) and {options['app']} (app) ready")
            if options["grant"]:
                database_roles_grant(app=options["app"])
                self.stdout.write(f"{options['app']} may only INSERT and SELECT the audit trail")
        except RoleSetupError as exc:
            raise CommandError(str(exc)) from None


def _password(name: str) -> str:
    password = os.environ.get(name, "")
    if len(password) < 12:
        raise CommandError(f"{name} must be set (12 characters or more)")
    return password
