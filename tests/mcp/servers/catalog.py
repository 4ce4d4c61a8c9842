"""200 realistic, distinct tools of a company's back office, for the discovery tests.

Ten domains of twenty tools each (CRM, billing, files, calendar, email, inventory, HR, support,
analytics, DevOps). Each line is `name | one-line description | parameters` with parameters as
`name:type` (`?` marks an optional one). `catalog_server.py` serves them; `test_discovery.py`
checks that `search_tools` finds the right one for natural queries (`QUERIES`).
"""

from __future__ import annotations

TOOLS = """
crm_create_contact | Create a new contact person in the CRM with name, email and phone. | first_name:string, last_name:string, email:string, phone?:string
crm_get_contact | Fetch one CRM contact by id, with their company and owner. | contact_id:string
crm_update_contact | Change fields of an existing CRM contact such as title or phone number. | contact_id:string, fields:object
crm_delete_contact | Permanently delete a contact from the CRM. | contact_id:string
crm_search_contacts | Search CRM contacts by name, email domain or company. | query:string, limit?:integer
crm_merge_contacts | Merge two duplicate contact records into one, keeping the primary's id. | primary_id:string, duplicate_id:string
crm_create_lead | Register a new sales lead from a web form or event. | name:string, source:string, email?:string
crm_convert_lead | Convert a qualified lead into a contact, an account and an opportunity. | lead_id:string
crm_assign_lead_owner | Assign a sales representative as owner of a lead. | lead_id:string, owner_email:string
crm_score_lead | Compute a lead score from engagement and firmographic data. | lead_id:string
crm_create_opportunity | Open a sales opportunity (deal) for an account with an expected amount. | account_id:string, title:string, amount:number
crm_update_deal_stage | Move a deal to another pipeline stage such as negotiation or closed won. | opportunity_id:string, stage:string
crm_list_pipeline | List open deals in the sales pipeline grouped by stage. | owner_email?:string
crm_forecast_revenue | Forecast sales revenue for the quarter from the weighted pipeline. | quarter:string
crm_log_call | Log a phone call with a contact, with notes and duration. | contact_id:string, notes:string, minutes:integer
crm_add_note | Attach a free-text note to a contact, account or deal. | record_id:string, text:string
crm_create_account | Create a company account in the CRM with its industry and size. | company_name:string, industry?:string
crm_list_account_contacts | List every contact person that works at a company account. | account_id:string
crm_tag_record | Add a tag or label to a CRM record for segmentation. | record_id:string, tag:string
crm_export_segment | Export a CRM segment of contacts to CSV for a marketing campaign. | segment:string
billing_create_invoice | Create a draft invoice for a customer with line items. | customer_id:string, items:array
billing_send_invoice | Email a finalized invoice to the customer's billing address. | invoice_id:string
billing_void_invoice | Void an issued invoice that should not be paid. | invoice_id:string, reason:string
billing_list_overdue_invoices | List invoices that are past their due date and still unpaid. | days_overdue?:integer
billing_record_payment | Record a payment received against an invoice by bank transfer or check. | invoice_id:string, amount:number
billing_refund_payment | Refund a customer payment in full or in part to their card. | payment_id:string, amount?:number
billing_charge_card | Charge a customer's saved credit card immediately. | customer_id:string, amount:number, currency:string
billing_update_payment_method | Replace the credit card or bank account a customer pays with. | customer_id:string, token:string
billing_create_subscription | Start a recurring subscription plan for a customer. | customer_id:string, plan_id:string
billing_cancel_subscription | Cancel a customer's subscription at period end or immediately. | subscription_id:string, immediately?:boolean
billing_change_plan | Upgrade or downgrade a subscription to another pricing plan with proration. | subscription_id:string, plan_id:string
billing_apply_coupon | Apply a discount coupon code to a customer or subscription. | customer_id:string, code:string
billing_create_credit_note | Issue a credit note that reduces the amount of an invoice. | invoice_id:string, amount:number
billing_calculate_tax | Calculate sales tax or VAT for an address and an amount. | country:string, postal_code:string, amount:number
billing_get_balance | Get a customer's account balance and unpaid total. | customer_id:string
billing_list_transactions | List payment transactions in a date range. | start_date:string, end_date:string
billing_retry_failed_payment | Retry a failed card charge (dunning). | payment_id:string
billing_export_ledger | Export the general ledger entries for accounting as CSV. | month:string
billing_set_payment_terms | Set net payment terms such as net 30 for a customer. | customer_id:string, days:integer
billing_get_revenue_report | Monthly recurring revenue, churned revenue and expansion report. | month:string
files_upload | Upload a file to shared storage in a folder. | folder_id:string, name:string, content_base64:string
files_download | Download the contents of a stored file. | file_id:string
files_delete | Move a stored file to the trash. | file_id:string
files_restore_from_trash | Restore a deleted file from the trash. | file_id:string
files_rename | Rename a stored file or folder. | file_id:string, new_name:string
files_move | Move a file into another folder. | file_id:string, folder_id:string
files_copy | Make a copy of a file in the same or another folder. | file_id:string, folder_id?:string
files_create_folder | Create a new folder inside a parent folder. | parent_id:string, name:string
files_list_folder | List the files and subfolders of a folder. | folder_id:string
files_search | Full-text search over file names and document contents. | query:string
files_share_link | Create a public share link to a file with an optional expiry. | file_id:string, expires_days?:integer
files_set_permissions | Grant a user or group read or write access to a file or folder. | file_id:string, principal:string, role:string
files_list_versions | List the version history of a file. | file_id:string
files_revert_version | Revert a file to an earlier version. | file_id:string, version:integer
files_get_metadata | Get size, owner, type and modification time of a file. | file_id:string
files_lock | Lock a file so that others cannot edit it. | file_id:string
files_storage_quota | Show how much storage space is used and left in the quota. | user_email?:string
files_convert_pdf | Convert a document or spreadsheet to PDF. | file_id:string
files_extract_text | Extract plain text from a PDF or scanned image with OCR. | file_id:string
files_zip_folder | Compress a folder into a zip archive. | folder_id:string
calendar_create_event | Schedule a calendar event or meeting with attendees. | title:string, start:string, end:string, attendees?:array
calendar_update_event | Change the time, title or place of a calendar event. | event_id:string, fields:object
calendar_cancel_event | Cancel a meeting and notify its attendees. | event_id:string
calendar_list_events | List calendar events between two dates. | start:string, end:string
calendar_find_free_slot | Find a free time slot when all given people are available. | attendees:array, duration_minutes:integer
calendar_invite_attendee | Invite another person to an existing meeting. | event_id:string, email:string
calendar_respond_invitation | Accept, decline or tentatively accept a meeting invitation. | event_id:string, response:string
calendar_set_reminder | Set a reminder notification before an event starts. | event_id:string, minutes_before:integer
calendar_book_room | Book a meeting room for a time range. | room_id:string, start:string, end:string
calendar_list_rooms | List the meeting rooms of an office with their capacity. | office:string
calendar_set_out_of_office | Set an out-of-office period with an auto reply. | start:string, end:string, message?:string
calendar_share_calendar | Share your calendar with a colleague. | email:string, access:string
calendar_create_recurring_event | Create a recurring meeting, for example weekly on Mondays. | title:string, rule:string, start:string
calendar_get_event | Get the details of one calendar event. | event_id:string
calendar_list_holidays | List public holidays of a country for a year. | country:string, year:integer
calendar_convert_timezone | Convert a time from one time zone to another. | time:string, from_tz:string, to_tz:string
calendar_add_video_link | Add a video conference link to a meeting. | event_id:string
calendar_working_hours | Get a person's working hours and time zone. | email:string
calendar_export_ics | Export calendar events as an iCalendar (.ics) file. | start:string, end:string
calendar_propose_new_time | Propose a new time for a meeting you were invited to. | event_id:string, start:string
email_send | Send an email message to one or more recipients. | to:array, subject:string, body:string
email_reply | Reply to an email thread. | message_id:string, body:string
email_forward | Forward an email to other recipients. | message_id:string, to:array
email_search_inbox | Search the mailbox by sender, subject or words in the body. | query:string
email_get_message | Read one email message with its headers and body. | message_id:string
email_list_unread | List unread messages in the inbox. | limit?:integer
email_mark_read | Mark messages as read or unread. | message_ids:array, read:boolean
email_archive | Archive email messages out of the inbox. | message_ids:array
email_move_to_folder | Move email messages to a mail folder or label. | message_ids:array, folder:string
email_create_draft | Save an email as a draft without sending it. | to:array, subject:string, body:string
email_schedule_send | Schedule an email to be sent later at a given time. | draft_id:string, send_at:string
email_download_attachment | Download an attachment of an email message. | message_id:string, attachment_id:string
email_create_filter | Create a mail filter rule that sorts incoming messages. | criteria:object, action:object
email_block_sender | Block a sender so their mail goes to spam. | address:string
email_list_templates | List saved email templates. | 
email_send_template | Send an email built from a saved template with variables. | template_id:string, to:array, variables:object
email_unsubscribe | Unsubscribe an address from a mailing list. | list_id:string, address:string
email_bounce_report | Report of bounced and undeliverable emails of a campaign. | campaign_id:string
email_set_signature | Set the signature appended to outgoing mail. | html:string
email_verify_address | Check that an email address exists and can receive mail. | address:string
inventory_get_stock_level | Get the quantity in stock of a product (SKU) per warehouse. | sku:string
inventory_adjust_stock | Adjust stock quantity after a count, damage or loss. | sku:string, warehouse:string, delta:integer
inventory_transfer_stock | Transfer units of a product between two warehouses. | sku:string, from_warehouse:string, to_warehouse:string, quantity:integer
inventory_create_product | Add a new product with SKU, name and price to the catalog. | sku:string, name:string, price:number
inventory_update_price | Change the selling price of a product. | sku:string, price:number
inventory_list_low_stock | List products whose stock is below the reorder point. | warehouse?:string
inventory_create_purchase_order | Create a purchase order to reorder stock from a supplier. | supplier_id:string, lines:array
inventory_receive_shipment | Receive an incoming supplier shipment into a warehouse. | purchase_order_id:string
inventory_list_suppliers | List suppliers with their lead times and contacts. | 
inventory_reserve_stock | Reserve stock for a customer order so it is not sold twice. | order_id:string
inventory_release_reservation | Release reserved stock of a cancelled order. | order_id:string
inventory_create_shipment | Create an outbound shipment and a shipping label with a carrier. | order_id:string, carrier:string
inventory_track_package | Track a parcel by its carrier tracking number. | tracking_number:string
inventory_process_return | Process a customer return (RMA) and restock the items. | order_id:string, items:array
inventory_valuation | Compute the value of stock on hand at cost. | warehouse?:string
inventory_barcode_lookup | Look up a product by its barcode (EAN or UPC). | barcode:string
inventory_set_reorder_point | Set the minimum quantity that triggers a reorder. | sku:string, minimum:integer
inventory_cycle_count | Start a cycle count of a warehouse aisle. | warehouse:string, aisle:string
inventory_list_orders | List customer sales orders by status. | status?:string
inventory_cancel_order | Cancel a customer sales order before it ships. | order_id:string
hr_get_employee | Get an employee's profile: title, manager, department, start date. | employee_id:string
hr_list_employees | List employees of a department. | department?:string
hr_onboard_employee | Start onboarding of a new hire: accounts, laptop, first-day checklist. | name:string, start_date:string, role:string
hr_offboard_employee | Offboard a leaving employee and revoke their access. | employee_id:string, last_day:string
hr_request_time_off | Request vacation or sick leave days. | employee_id:string, start:string, end:string, kind:string
hr_approve_time_off | Approve or reject a pending leave request. | request_id:string, approve:boolean
hr_vacation_balance | How many vacation days an employee has left this year. | employee_id:string
hr_run_payroll | Run payroll for a pay period and create payslips. | period:string
hr_get_payslip | Get an employee's payslip for a month. | employee_id:string, month:string
hr_update_salary | Change an employee's salary with an effective date. | employee_id:string, amount:number, effective:string
hr_org_chart | Show the org chart of reporting lines under a manager. | manager_id?:string
hr_post_job_opening | Post a job opening on the careers page. | title:string, department:string, description:string
hr_list_candidates | List job applicants of an opening with their stage. | opening_id:string
hr_schedule_interview | Schedule an interview with a candidate and interviewers. | candidate_id:string, interviewers:array, start:string
hr_send_offer_letter | Send an offer letter to a candidate. | candidate_id:string, salary:number
hr_submit_expense | Submit an expense report with receipts for reimbursement. | employee_id:string, amount:number, receipt_file_id:string
hr_approve_expense | Approve an expense report for reimbursement. | expense_id:string
hr_performance_review | Start a performance review cycle for an employee. | employee_id:string
hr_record_training | Record a completed training or certification. | employee_id:string, course:string
hr_benefits_enrollment | Enroll an employee in health insurance and other benefits. | employee_id:string, plan:string
support_create_ticket | Open a customer support ticket with subject and description. | customer_email:string, subject:string, description:string
support_get_ticket | Get a support ticket with its conversation history. | ticket_id:string
support_reply_ticket | Reply to the customer on a support ticket. | ticket_id:string, body:string
support_assign_ticket | Assign a support ticket to an agent or team. | ticket_id:string, assignee:string
support_escalate_ticket | Escalate a ticket to second-level support or engineering. | ticket_id:string, reason:string
support_close_ticket | Close a solved support ticket. | ticket_id:string
support_reopen_ticket | Reopen a closed ticket when the problem comes back. | ticket_id:string
support_set_priority | Set the priority of a ticket: low, normal, high, urgent. | ticket_id:string, priority:string
support_list_open_tickets | List open tickets, optionally only those breaching their SLA. | breaching_sla?:boolean
support_merge_tickets | Merge duplicate tickets about the same issue. | ticket_ids:array
support_add_internal_note | Add an internal note to a ticket, not visible to the customer. | ticket_id:string, text:string
support_search_knowledge_base | Search help center articles for an answer. | query:string
support_create_article | Write a new knowledge base article. | title:string, body:string
support_customer_satisfaction | Customer satisfaction (CSAT) scores of closed tickets. | start_date:string, end_date:string
support_create_macro | Create a canned response macro agents can reuse. | name:string, body:string
support_tag_ticket | Add tags to a ticket for reporting. | ticket_id:string, tags:array
support_list_agents | List support agents with their online status and load. | 
support_start_chat | Start a live chat session with a website visitor. | visitor_id:string
support_transfer_chat | Transfer a live chat to another agent. | chat_id:string, agent:string
support_sla_report | Report of first response and resolution times against SLA targets. | month:string
analytics_run_sql | Run a read-only SQL query on the data warehouse. | sql:string
analytics_list_tables | List the tables and views of the data warehouse. | schema?:string
analytics_describe_table | Show the columns and types of a warehouse table. | table:string
analytics_create_dashboard | Create a dashboard with charts. | title:string, charts:array
analytics_add_chart | Add a chart (line, bar, pie) to a dashboard. | dashboard_id:string, kind:string, query:string
analytics_share_dashboard | Share a dashboard with people or a team. | dashboard_id:string, emails:array
analytics_schedule_report | Email a report on a schedule such as every Monday morning. | query:string, cron:string, recipients:array
analytics_website_traffic | Website visitors, page views and bounce rate per day. | start_date:string, end_date:string
analytics_funnel_conversion | Conversion rates through the steps of a signup or checkout funnel. | funnel_id:string
analytics_cohort_retention | Retention of user cohorts by signup week. | start_date:string
analytics_track_event | Track a product analytics event for a user. | user_id:string, event:string, properties?:object
analytics_ab_test_results | Results and statistical significance of an A/B experiment. | experiment_id:string
analytics_create_experiment | Create an A/B test with variants and traffic split. | name:string, variants:array
analytics_active_users | Daily, weekly and monthly active users. | date:string
analytics_detect_anomalies | Detect anomalies or sudden spikes in a metric time series. | metric:string
analytics_export_csv | Export the result of a query as a CSV file. | query:string
analytics_define_metric | Define a named business metric from a SQL expression. | name:string, sql:string
analytics_top_pages | The most visited pages of the website. | limit?:integer
analytics_attribution | Marketing channel attribution of conversions. | start_date:string, end_date:string
analytics_nps_score | Net promoter score from survey answers. | survey_id:string
devops_deploy_service | Deploy a service version to an environment such as staging or production. | service:string, version:string, environment:string
devops_rollback_deploy | Roll back a service to the previous release. | service:string, environment:string
devops_list_deployments | List recent deployments of a service. | service:string
devops_restart_service | Restart the pods or processes of a service. | service:string, environment:string
devops_scale_service | Scale a service to a number of replicas. | service:string, replicas:integer
devops_get_logs | Fetch recent log lines of a service, filtered by level. | service:string, level?:string, since?:string
devops_list_alerts | List firing monitoring alerts. | severity?:string
devops_acknowledge_alert | Acknowledge a firing alert so the on-call is not paged again. | alert_id:string
devops_create_incident | Declare an incident and open a status page entry. | title:string, severity:string
devops_who_is_on_call | Who is on call right now for a team's pager rotation. | team:string
devops_get_metrics | CPU, memory and latency metrics of a service. | service:string, metric:string
devops_create_dns_record | Create a DNS record (A, CNAME, TXT) in a zone. | zone:string, name:string, kind:string, value:string
devops_renew_certificate | Renew the TLS certificate of a domain. | domain:string
devops_rotate_secret | Rotate an API key or secret in the secrets vault. | secret_name:string
devops_run_pipeline | Trigger a CI pipeline for a branch. | repository:string, branch:string
devops_pipeline_status | Status of a CI pipeline run and its failed jobs. | run_id:string
devops_create_branch | Create a git branch in a repository. | repository:string, name:string, from_ref?:string
devops_merge_pull_request | Merge an approved pull request. | repository:string, number:integer
devops_list_vulnerabilities | List known security vulnerabilities (CVEs) in dependencies. | repository:string
devops_backup_database | Take a backup snapshot of a production database. | database:string
"""

# (query, the tool it must find). Worded as a person asks, not as the tool is named.
QUERIES = [
    ("refund a customer's payment", "billing_refund_payment"),
    ("invoices that are overdue and unpaid", "billing_list_overdue_invoices"),
    ("cancel subscription", "billing_cancel_subscription"),
    ("merge duplicate contacts", "crm_merge_contacts"),
    ("move a deal to another pipeline stage", "crm_update_deal_stage"),
    ("restore a deleted file from the trash", "files_restore_from_trash"),
    ("extract text from a scanned pdf", "files_extract_text"),
    ("find a free time slot for a meeting", "calendar_find_free_slot"),
    ("book a meeting room", "calendar_book_room"),
    ("search the inbox for emails", "email_search_inbox"),
    ("download an email attachment", "email_download_attachment"),
    ("products with low stock below the reorder point", "inventory_list_low_stock"),
    ("track a package by tracking number", "inventory_track_package"),
    ("vacation days left", "hr_vacation_balance"),
    ("escalate a support ticket to engineering", "support_escalate_ticket"),
    ("run a sql query on the warehouse", "analytics_run_sql"),
    ("roll back the last deployment", "devops_rollback_deploy"),
    ("who is on call", "devops_who_is_on_call"),
    ("rotate an api key secret", "devops_rotate_secret"),
    ("renew the tls certificate", "devops_renew_certificate"),
]


def parse() -> list[dict]:
    """The tools as MCP `Tool` dicts: name, description, inputSchema."""
    tools = []
    for line in TOOLS.strip().splitlines():
        name, description, params = (part.strip() for part in line.split("|"))
        properties: dict = {}
        required: list[str] = []
        for p in filter(None, (p.strip() for p in params.split(","))):
            pname, ptype = p.split(":")
            if pname.endswith("?"):
                pname = pname[:-1]
            else:
                required.append(pname)
            properties[pname] = {"type": ptype}
        schema: dict = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        tools.append({"name": name, "description": description, "inputSchema": schema})
    return tools


if __name__ == "__main__":
    tools = parse()
    names = [t["name"] for t in tools]
    assert len(names) == len(set(names)) == 200, (len(names), len(set(names)))
    print(len(tools), "tools")
