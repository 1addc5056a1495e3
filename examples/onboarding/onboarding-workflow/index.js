// Employee onboarding, a workflow written in JavaScript.
//
// Welcome e-mail -> a durable multi-day sleep -> a follow-up e-mail whose
// content depends on whether the `account-activated` signal arrived
// meanwhile. The e-mails are sent by the Python activity `send-email`
// (../email-activities). Query `status` at any time.
import {
  activity,
  sleep,
  signal,
  onQuery,
  queryExport,
  workflowInfo,
  log,
  ApplicationFailure,
} from 'caisson-guest';

export function onboardEmployee(employee) {
  if (!employee.email.includes('@')) {
    throw new ApplicationFailure(`${employee.email} is not an e-mail address`, 'InvalidEmployee');
  }
  const state = { stage: 'welcoming', emailsSent: [], activated: false, followUpAt: null };
  // Query answers use the same snake_case keys as the (WIT-typed) result.
  onQuery('status', () => ({
    stage: state.stage,
    emails_sent: state.emailsSent,
    activated: state.activated,
    follow_up_at: state.followUpAt,
  }));
  const activated = signal('account-activated');

  const sendEmail = (subject, body) =>
    activity('send-email', { to: employee.email, subject, body })
      .startToClose(10_000)
      .retry({ initialIntervalMs: 500, maximumAttempts: 5, nonRetryableErrorTypes: ['InvalidAddress'] })
      .call();

  state.emailsSent.push(
    sendEmail(
      `Welcome to the team, ${employee.name}!`,
      `Hi ${employee.name},\n\nwelcome aboard! Activate your account to get started.\n`,
    ),
  );

  // Date.now() is workflow time here (virtual determinism mode).
  state.followUpAt = new Date(Date.now() + Number(employee.followUpAfterMs)).toISOString();
  state.stage = 'waiting';
  log(`${workflowInfo().workflowId}: follow-up for ${employee.name} at ${state.followUpAt}`);
  sleep(employee.followUpAfterMs); // durable: survives worker restarts, for days

  while (activated.tryRecv() !== undefined) state.activated = true;
  state.stage = 'following-up';
  state.emailsSent.push(
    state.activated
      ? sendEmail('Tips for your first week', `Hi ${employee.name},\n\nhere is what helps in week one.\n`)
      : sendEmail('Reminder: activate your account', `Hi ${employee.name},\n\nyour account is still waiting for you.\n`),
  );

  state.stage = 'done';
  return { employeeId: employee.id, emailsSent: state.emailsSent, activated: state.activated };
}

// Answers `status` after the workflow has returned.
export const queries = queryExport;
