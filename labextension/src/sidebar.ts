/**
 * The runs sidebar: the workspace's experiments and their runs, a run's steps with their logs and
 * metrics, and the published pipelines and schedules with enable/disable toggles.
 *
 * It reads the server's /mlpipe/api/ routes through ServerConnection (so Jupyter's token and xsrf
 * handling apply) and polls them every two seconds while it is visible.
 */
import { ServerConnection } from '@jupyterlab/services';
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

const POLL_MS = 2000;
const RUN_LIMIT = 100;
const FINAL = new Set(['Completed', 'Failed', 'Canceled']);
const TRIGGER_LABELS: { [key: string]: string } = { sdk: 'sdk', rest: 'rest' };

export const runsIcon = new LabIcon({
  name: 'mlpipe:runs',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24">' +
    '<g class="jp-icon3" fill="#616161"><circle cx="5" cy="6" r="2.5"/><circle cx="5" cy="18" r="2.5"/>' +
    '<circle cx="19" cy="12" r="2.5"/><path d="M7 6.5h4.5l4 4.5M7 17.5h4.5l4-4.5" stroke="#616161" ' +
    'stroke-width="1.6" fill="none"/></g></svg>'
});

interface IRunSummary {
  Id: string;
  ExperimentName: string;
  Name: string;
  Status: string;
  StartTimeUtc: string | null;
  EndTimeUtc: string | null;
  TriggeredBy: string;
}

interface IStep {
  Id: string;
  Name: string;
  Status: string;
  Reused: boolean;
  Metrics: { [name: string]: unknown };
}

/** A message from the API's `{"error": {"code", "message"}}` answers. */
class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string
  ) {
    super(message);
  }
}

function el(tag: string, className = '', text = ''): HTMLElement {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text) {
    node.textContent = text;
  }
  return node;
}

function button(label: string, className: string, onClick: () => void): HTMLButtonElement {
  const b = el('button', `jp-Button mlpipe-button ${className}`, label) as HTMLButtonElement;
  b.addEventListener('click', event => {
    event.stopPropagation();
    onClick();
  });
  return b;
}

/** "schedule:<id>" reads as "schedule"; the id stays in the tooltip. */
function triggerLabel(triggeredBy: string): string {
  return TRIGGER_LABELS[triggeredBy] ?? (triggeredBy.startsWith('schedule') ? 'schedule' : triggeredBy);
}

function duration(start: string | null, end: string | null): string {
  if (!start) {
    return '';
  }
  const ms = (end ? Date.parse(end) : Date.now()) - Date.parse(start);
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m ${s % 60}s` : `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

function startTime(start: string | null): string {
  return start ? new Date(start).toLocaleString() : 'not started';
}

function statusBadge(status: string): HTMLElement {
  return el('span', `mlpipe-run-status mlpipe-status-${status.toLowerCase()}`, status);
}

export class RunsSidebar extends Widget {
  private timer = 0;
  private busy = false;
  private closedExperiments = new Set<string>(); // the groups the user folded
  private selectedRun: string | null = null;
  private selectedStep: string | null = null;
  private readonly message = el('div', 'mlpipe-sidebar-message');
  private readonly experiments = el('div', 'mlpipe-experiments');
  private readonly details = el('div', 'mlpipe-run-details');
  private readonly published = el('div', 'mlpipe-published');
  private readonly schedules = el('div', 'mlpipe-schedules');

  constructor(private readonly settings: ServerConnection.ISettings) {
    super();
    this.addClass('mlpipe-runs-sidebar');
    this.node.append(
      el('h2', 'mlpipe-sidebar-title', 'Pipeline runs'),
      this.message,
      this.experiments,
      this.details,
      el('h3', 'mlpipe-sidebar-heading', 'Published'),
      this.published,
      this.schedules
    );
  }

  // -- polling -------------------------------------------------------------------------------------------
  protected onAfterShow(): void {
    void this.refresh();
    window.clearInterval(this.timer);
    this.timer = window.setInterval(() => void this.refresh(), POLL_MS);
  }

  protected onBeforeHide(): void {
    window.clearInterval(this.timer);
  }

  dispose(): void {
    window.clearInterval(this.timer);
    super.dispose();
  }

  /** Everything the sidebar shows, read again; one refresh at a time. */
  async refresh(): Promise<void> {
    if (this.busy || this.isDisposed) {
      return;
    }
    this.busy = true;
    try {
      const [experiments, runs] = await Promise.all([
        this.api('experiments'),
        this.api(`runs?limit=${RUN_LIMIT}`)
      ]);
      this.renderExperiments(experiments.Value, runs.Value);
      await this.renderDetails();
      await this.renderPublished();
      this.message.textContent = '';
    } catch (error) {
      this.message.textContent = `Cannot read the runs: ${(error as Error).message}`;
    } finally {
      this.busy = false;
    }
  }

  private async request(path: string, method = 'GET'): Promise<Response> {
    const url = `${this.settings.baseUrl}mlpipe/api/${path}`;
    const response = await ServerConnection.makeRequest(url, { method }, this.settings);
    if (!response.ok) {
      let message = response.statusText;
      try {
        message = (await response.json()).error.message;
      } catch {
        // not one of the API's JSON errors: keep the status text
      }
      throw new ApiError(response.status, message);
    }
    return response;
  }

  private async api(path: string, method = 'GET'): Promise<any> {
    return (await this.request(path, method)).json();
  }

  /** A button's action, then a refresh; a refused action is shown, not thrown. */
  private async act(path: string): Promise<any> {
    try {
      const answer = await this.api(path, 'POST');
      await this.refresh();
      return answer;
    } catch (error) {
      this.message.textContent = (error as Error).message;
      return null;
    }
  }

  // -- experiments and runs ------------------------------------------------------------------------------
  private renderExperiments(experiments: any[], runs: IRunSummary[]): void {
    const rows: HTMLElement[] = [];
    if (experiments.length === 0) {
      rows.push(el('div', 'mlpipe-empty', 'No runs yet.'));
    }
    for (const experiment of experiments) {
      const name: string = experiment.Name;
      const group = el('details', 'mlpipe-experiment') as HTMLDetailsElement;
      group.dataset.experiment = name;
      group.open = !this.closedExperiments.has(name);
      group.addEventListener('toggle', () =>
        group.open ? this.closedExperiments.delete(name) : this.closedExperiments.add(name)
      );
      const summary = el('summary', 'mlpipe-experiment-name', name);
      summary.append(el('span', 'mlpipe-experiment-count', ` (${experiment.RunCount})`));
      group.append(summary);
      for (const run of runs.filter(r => r.ExperimentName === name)) {
        group.append(this.runRow(run));
      }
      rows.push(group);
    }
    this.experiments.replaceChildren(...rows);
  }

  private runRow(run: IRunSummary): HTMLElement {
    const row = el('div', 'mlpipe-run-row');
    row.dataset.runId = run.Id;
    row.title = `${run.Name} (${run.Id})`;
    if (run.Id === this.selectedRun) {
      row.classList.add('mlpipe-selected');
    }
    const trigger = el('span', 'mlpipe-run-trigger', triggerLabel(run.TriggeredBy));
    trigger.title = `started by ${run.TriggeredBy}`;
    row.append(
      statusBadge(run.Status),
      el('span', 'mlpipe-run-start', startTime(run.StartTimeUtc)),
      el('span', 'mlpipe-run-duration', duration(run.StartTimeUtc, run.EndTimeUtc)),
      trigger
    );
    row.addEventListener('click', () => {
      this.selectedRun = run.Id;
      this.selectedStep = null;
      void this.refresh();
    });
    return row;
  }

  // -- one run -------------------------------------------------------------------------------------------
  private async renderDetails(): Promise<void> {
    if (!this.selectedRun) {
      this.details.replaceChildren();
      return;
    }
    let run: any;
    try {
      run = await this.api(`runs/${encodeURIComponent(this.selectedRun)}`);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        this.selectedRun = null; // gone (a queued run canceled, a workspace replaced)
        this.details.replaceChildren();
        return;
      }
      throw error;
    }
    const header = el('div', 'mlpipe-run-header');
    header.append(el('span', 'mlpipe-run-title', `${run.Name} · ${run.Id}`), statusBadge(run.Status));
    const actions = el('div', 'mlpipe-run-actions');
    if (!FINAL.has(run.Status)) {
      actions.append(button('Cancel', 'mlpipe-cancel-run', () => void this.act(`runs/${run.Id}/cancel`)));
    }
    actions.append(
      button('Re-run', 'mlpipe-rerun', async () => {
        const answer = await this.act(`runs/${run.Id}/rerun`);
        if (answer?.Id) {
          this.selectedRun = answer.Id;
          this.selectedStep = null;
          void this.refresh();
        }
      }),
      button('Close', 'mlpipe-close-run', () => {
        this.selectedRun = null;
        void this.refresh();
      })
    );
    const parts: HTMLElement[] = [header, actions];
    if (run.Error) {
      parts.push(el('div', 'mlpipe-run-error', run.Error));
    }
    parts.push(this.metricsTable(run.Metrics));
    const steps: IStep[] = run.Steps ?? [];
    const list = el('div', 'mlpipe-run-steps');
    for (const step of steps) {
      list.append(this.stepRow(run.Id, step));
    }
    parts.push(list);
    const log = await this.stepLog(run.Id, steps);
    if (log) {
      parts.push(log);
    }
    this.details.replaceChildren(...parts);
  }

  private stepRow(runId: string, step: IStep): HTMLElement {
    const row = el('div', `mlpipe-run-step${step.Name === this.selectedStep ? ' mlpipe-selected' : ''}`);
    row.dataset.step = step.Name;
    row.append(
      statusBadge(step.Status),
      el('span', 'mlpipe-step-name', step.Name),
      el('span', 'mlpipe-step-reused', step.Reused ? 'reused' : '')
    );
    row.addEventListener('click', () => {
      this.selectedStep = step.Name;
      void this.refresh();
    });
    return row;
  }

  /** The selected step's metrics and log (the whole log, read again while the step runs). */
  private async stepLog(runId: string, steps: IStep[]): Promise<HTMLElement | null> {
    const step = steps.find(s => s.Name === this.selectedStep);
    if (!step) {
      return null;
    }
    const box = el('div', 'mlpipe-step-details');
    box.append(el('div', 'mlpipe-step-details-title', `${step.Name}: log`));
    box.append(this.metricsTable(step.Metrics));
    const path = `runs/${encodeURIComponent(runId)}/steps/${encodeURIComponent(step.Name)}/log`;
    const text = await (await this.request(path)).text();
    box.append(el('pre', 'mlpipe-step-log', text || '(no output yet)'));
    return box;
  }

  private metricsTable(metrics: { [name: string]: unknown } | undefined): HTMLElement {
    const table = el('table', 'mlpipe-metrics');
    for (const [name, value] of Object.entries(metrics ?? {})) {
      const row = el('tr');
      const shown = Array.isArray(value) ? value.join(', ') : JSON.stringify(value);
      row.append(el('td', 'mlpipe-metric-name', name), el('td', 'mlpipe-metric-value', shown));
      table.append(row);
    }
    return table;
  }

  // -- published pipelines and schedules -----------------------------------------------------------------
  private async renderPublished(): Promise<void> {
    const pipelines = (await this.api('pipelines?active_only=false')).Value;
    const rows: HTMLElement[] = pipelines.length ? [] : [el('div', 'mlpipe-empty', 'No published pipelines.')];
    for (const p of pipelines) {
      rows.push(
        this.toggleRow('mlpipe-published-row', p.Id, p.Name, p.Status, p.Version ? `v${p.Version}` : '', 'pipelines')
      );
    }
    this.published.replaceChildren(...rows);

    let schedules: any[] = [];
    try {
      schedules = (await this.api('schedules')).Value;
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) {
        throw error; // a server without schedules answers 404: nothing to show
      }
    }
    const scheduleRows: HTMLElement[] = schedules.length ? [el('h4', 'mlpipe-sidebar-subheading', 'Schedules')] : [];
    for (const s of schedules) {
      const next = s.NextRunTimeUtc ? `next ${new Date(s.NextRunTimeUtc).toLocaleString()}` : '';
      scheduleRows.push(
        this.toggleRow('mlpipe-schedule-row', s.Id, s.Name || s.Id, s.Status, `${s.ExperimentName} ${next}`, 'schedules')
      );
    }
    this.schedules.replaceChildren(...scheduleRows);
  }

  private toggleRow(className: string, id: string, name: string, status: string, note: string, route: string) {
    const row = el('div', className);
    row.dataset.id = id;
    row.title = id;
    const active = status === 'Active';
    row.append(
      el('span', 'mlpipe-published-name', name),
      el('span', `mlpipe-published-status mlpipe-status-${status.toLowerCase()}`, status),
      el('span', 'mlpipe-published-note', note),
      button(active ? 'Disable' : 'Enable', 'mlpipe-toggle', () =>
        void this.act(`${route}/${encodeURIComponent(id)}/${active ? 'disable' : 'enable'}`)
      )
    );
    return row;
  }
}
