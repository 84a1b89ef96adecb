"""Interface strings of third-party apps that no installed catalogue translates.

django-unfold and django-tasks-db ship no Simplified Chinese catalogue, so the console's chrome
(login page, filters, search, pagination) and the task results page are translated in Siyu's.
Naming the strings here keeps ``makemessages`` from dropping them; nothing imports this module.
"""

from django.utils.translation import gettext_noop as _

UNFOLD_STRINGS = (
    # Login and account
    _("Welcome back to"),
    _("Return to site"),
    _("Toggle password visibility"),
    _("You have been successfully logged out from the administration"),
    _("After you've created a user, you’ll be able to edit more user options."),
    _("Raw passwords are not stored, so there is no way to see this user’s password, but you can "
      "change the password using <a href=\"{}\" class=\"text-primary-600 dark:text-primary-500\">"
      "this form</a>."),
    # Sidebar, header, theme
    _("Search apps and models..."),
    _("All applications"),
    _("Collapse"),
    _("Light"),
    _("Dark"),
    _("System"),
    _("Go back"),
    _("General"),
    # Search
    _("Type to search"),
    _("Recent searches"),
    _("No recent searches"),
    _("No results matching your query"),
    _("Loading more results..."),
    _("No results found"),
    # Change lists, filters and actions
    _("Filters"),
    _("Apply Filters"),
    _("Reset filters"),
    _("From"),
    _("To"),
    _("Date from"),
    _("Date to"),
    _("Date"),
    _("Select value"),
    _("Select record"),
    _("Select all rows"),
    _("Select action"),
    _("Select action to run"),
    _("Run"),
    _("More actions"),
    _("Expand row"),
    _("Previous"),
    _("Next"),
    _("No data"),
    _("Not enough data."),
    _("This page yielded into no results. Create a new item or reset your filters."),
    _("True"),
    _("False"),
    # Change forms and inlines
    _("Add row"),
    _("Add new item"),
    _("This item will be deleted."),
    _("Click to cancel"),
    _("Cancel"),
    _("Submit"),
    _("Edit"),
    _("New"),
    _("Name"),
    _("Value"),
    _("Code"),
    _("Default"),
    _("Reset to default"),
    _("Current file"),
    _("Choose file to upload"),
    _("Image preview"),
    _("Click to download"),
    _("Record picture"),
    _("Link"),
)

TASKS_DB_STRINGS = (
    _("Task Result"),
    _("Task Results"),
    _("enqueued at"),
    _("started at"),
    _("finished at"),
    _("args kwargs"),
    _("priority"),
    _("task path"),
    _("worker id"),
    _("queue name"),
    _("backend name"),
    _("run after"),
    _("return value"),
    _("exception class path"),
    _("traceback"),
)
